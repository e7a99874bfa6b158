// hato: one binary for the whole mail service. See src/app/cli.cc.
#include "app/cli.h"

int main(int argc, char** argv) { return hato::app::RunCli(argc, argv); }
