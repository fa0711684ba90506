// Subcommand entry points. Each returns the process exit code (0 done, 1 failed, 2 usage/environment).
#pragma once

#include "engine/core/error.hpp"

namespace ts::app {

int cmdRender(int argc, char** argv);
int cmdDemo(int argc, char** argv);
int cmdView(int argc, char** argv);
int cmdTrain(int argc, char** argv);
int cmdLandscape(int argc, char** argv);
int cmdOpen(int argc, char** argv);
int cmdExplain(int argc, char** argv);
int cmdProject(int argc, char** argv);
int cmdNeurogram(int argc, char** argv);
int cmdFeatures(int argc, char** argv);

// Prints "tensorscape: error: MESSAGE" on one line and returns the error's exit code.
int reportError(const ts::Error& e);

} // namespace ts::app
