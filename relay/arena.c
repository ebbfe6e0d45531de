/* arena.c: see arena.h. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/* Large enough that a batch of 512 typical events takes a handful of blocks. */
#define ARENA_BLOCK_SIZE ((size_t)64 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t size;      /* bytes of data[] */
	size_t used;
	max_align_t data[];
};

static struct arena_block *
arena_block_new(size_t size)
{
	struct arena_block *b = malloc(sizeof *b + size);

	if (b == NULL)
		abort();
	b->size = size;
	return b;
}

void *
arena_alloc(struct arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	struct arena_block *b = a->used;
	void *p;

	if (n > SIZE_MAX / 2)
		abort();
	n = (n + align - 1) & ~(align - 1);
	if (b == NULL || b->size - b->used < n) {
		if (n > ARENA_BLOCK_SIZE) {
			b = arena_block_new(n);
		} else if (a->spare != NULL) {
			b = a->spare;
			a->spare = b->next;
		} else {
			b = arena_block_new(ARENA_BLOCK_SIZE);
		}
		b->used = 0;
		b->next = a->used;
		a->used = b;
	}
	p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
arena_reset(struct arena *a)
{
	struct arena_block *b;

	while ((b = a->used) != NULL) {
		a->used = b->next;
		if (b->size == ARENA_BLOCK_SIZE) {
			b->next = a->spare;
			a->spare = b;
		} else {
			free(b);
		}
	}
}

void
arena_free(struct arena *a)
{
	struct arena_block *b;

	arena_reset(a);
	while ((b = a->spare) != NULL) {
		a->spare = b->next;
		free(b);
	}
}
