/* fuzz.h: what the libFuzzer targets share: the entry points, a check that aborts (so
 * libFuzzer keeps the input) with a message, and splitting an input into fields. */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...) do {                                                   \
	if (!(cond)) {                                                                     \
		fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
		fprintf(stderr, __VA_ARGS__);                                                  \
		fputc('\n', stderr);                                                           \
		abort();                                                                       \
	}                                                                                  \
} while (0)

/* Split the NUL-terminated copy buf (size bytes before its NUL) on NUL bytes into at most
 * max fields; the last one holds the rest. */
static inline size_t
fuzz_split(char *buf, size_t size, char *field[], size_t max)
{
	size_t n = 0;
	char *p = buf, *end = buf + size;

	while (n < max) {
		field[n++] = p;
		p += strlen(p);
		if (p == end)
			break;
		p++;
	}
	return n;
}

#endif
