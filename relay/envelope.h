/* envelope.h: the push-events JSON envelope {"id","name","data"[,"metadata"]}. */
#ifndef RELAY_ENVELOPE_H
#define RELAY_ENVELOPE_H

#include <stddef.h>

/*
 * Build the envelope for one event into a malloc'd, NUL-terminated line: id and name
 * (the published name: the sink's prefix joined to the event's name) are JSON-escaped; payload and headers must already be
 * compact JSON (the store reads them through SQLite's json()), and are copied as they are.
 * headers NULL: no "metadata" key. Sets *len. Returns NULL only if memory runs out.
 */
char *envelope_build(const char *id, const char *name, const char *payload,
    const char *headers, size_t *len);

#endif
