# `cmake --install`: the executables (bin/), the decks, sweep files, machine profiles, job-script templates, env.sh
# and the analysis scripts (share/partrain/ — partrain-sweep finds its templates there, beside bin/), the libraries
# and headers (lib/, include/partrain/), and a package configuration so another project can
#   find_package(partrain REQUIRED)   target_link_libraries(app PRIVATE partrain::partrain)
# (partrain::partrain_collectives for the collectives alone). The configuration finds the same dependencies
# (cmake/PartrainDeps.cmake, installed beside it) with the messages it gives here.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(PARTRAIN_EXECUTABLES partrain-ref partrain-dp partrain-tp partrain-pp partrain-ep partrain-zero partrain-ps partrain-nmt
    partrain-collectives partrain-sweep partrain-compare partrain-calibrate partrain-predict)
install(TARGETS ${PARTRAIN_EXECUTABLES} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(TARGETS partrain partrain_core partrain_host partrain_collectives partrain_warnings EXPORT partrainTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/partrain/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/partrain
        FILES_MATCHING PATTERN "*.hpp")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/collectives/include/partrain/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/partrain
        FILES_MATCHING PATTERN "*.hpp")

set(PARTRAIN_SHARE ${CMAKE_INSTALL_DATADIR}/partrain)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/inputs ${PROJECT_SOURCE_DIR}/jobscripts DESTINATION ${PARTRAIN_SHARE})
install(FILES ${PROJECT_SOURCE_DIR}/scripts/env.sh DESTINATION ${PARTRAIN_SHARE}/scripts)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/analysis DESTINATION ${PARTRAIN_SHARE}/tools FILES_MATCHING PATTERN "*.py")
install(FILES ${PROJECT_SOURCE_DIR}/results/README.md DESTINATION ${PARTRAIN_SHARE}/results)

set(PARTRAIN_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/partrain)
install(EXPORT partrainTargets NAMESPACE partrain:: DESTINATION ${PARTRAIN_CMAKEDIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/partrainConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/partrainConfig.cmake INSTALL_DESTINATION ${PARTRAIN_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/partrainConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/partrainConfig.cmake ${PROJECT_BINARY_DIR}/partrainConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/PartrainDeps.cmake DESTINATION ${PARTRAIN_CMAKEDIR})
