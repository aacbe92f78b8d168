/* fuzz_b64.c: the lenient base64url decoder; decode(encode(x)) == x. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kb_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = NULL, *back = NULL;
	size_t n = 0, m = 0;
	char *enc;

	if (kb_b64url_decode((const char *)data, size, &out, &n) == 0)
		free(out);
	if ((enc = kb_b64url_encode(data, size)) == NULL)
		return 0;
	if (kb_b64url_decode(enc, strlen(enc), &back, &m) != 0 || m != size ||
	    (size > 0 && memcmp(back, data, size) != 0))
		abort();
	free(back);
	free(enc);
	return 0;
}
