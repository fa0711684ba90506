// Subcommands that are not built yet.
#include <cstdio>

#include "app/cli.hpp"
#include "app/commands.hpp"

namespace ts::app {

int cmdLandscape(int, char**) {
    return reportError(makeError(ErrorKind::Usage, "'landscape' is not available in this build yet"));
}

} // namespace ts::app
