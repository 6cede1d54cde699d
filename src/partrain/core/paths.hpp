#pragma once
// Questions about the file system that start-up checks ask.

#include <string>

namespace partrain {

/// "" when a file can be created in `dir`, else why not (strerror). It creates and removes a probe file:
/// access(W_OK) says yes to root everywhere, also on /proc or a read-only mount.
std::string directory_unwritable(const std::string& dir);

}  // namespace partrain
