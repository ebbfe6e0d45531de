/*
 * arena.h: memory for the strings of one batch (events read, published names, envelopes),
 * handed out from a few large blocks and given back all at once. A batch costs no malloc
 * per event, and what one batch used is reused by the next.
 */
#ifndef RELAY_ARENA_H
#define RELAY_ARENA_H

#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *used;   /* blocks in use, the current one first */
	struct arena_block *spare;  /* blocks given back, reused before any malloc */
};

#define ARENA_INIT { NULL, NULL }

/* n bytes, aligned for any type, valid until arena_reset or arena_free. Aborts on out of
 * memory, like xcalloc. */
void *arena_alloc(struct arena *a, size_t n);
/* A copy of s[0..n-1] with a NUL after it. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Give every allocation back; blocks of the standard size are kept for reuse, larger ones
 * (made for one oversized string) are freed, so memory stays flat. */
void arena_reset(struct arena *a);
void arena_free(struct arena *a);

#endif
