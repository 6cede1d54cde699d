#include "partrain/core/paths.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace partrain {

std::string directory_unwritable(const std::string& dir) {
  const std::string probe = dir + "/.partrain-probe." + std::to_string(getpid());
  const int fd = open(probe.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd < 0) return std::strerror(errno);
  close(fd);
  unlink(probe.c_str());
  return "";
}

}  // namespace partrain
