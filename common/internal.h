/* internal.h: shared only between the files of common/. */
#ifndef KB_COMMON_INTERNAL_H
#define KB_COMMON_INTERNAL_H

#include "kb_common.h"

#define KB_INI_MAX_FILE (1024 * 1024)
#define KB_SECRET_FILE_MAX 256

#endif
