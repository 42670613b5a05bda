/* Placeholder: filled by the build work of issue 7 (see doc/notes/perf.md). */
#include "obj_nlbuild.h"
