// jitgate: the CLI for requesters, approvers and security teams.
#include "cli/app.h"

int main(int argc, char** argv) { return jg::run_cli(argc, argv); }
