// The declarations are all in include/libfuzzer.h; SwiftPM needs one source file per C target.
#include "libfuzzer.h"
