/* Placeholder: direct text formatter for -i/-e lines (issue 7). */
#include "objconv.h"
