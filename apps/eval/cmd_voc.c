#include "subcommands.h"
int cmd_voc(int argc, char **argv) { (void)argc; (void)argv; return 2; }
