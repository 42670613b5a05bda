/* Placeholder: filled by the parse work of issue 7 (see doc/notes/perf.md). */
#include "obj_nlparse.h"
