/* envelope.h: the push-events JSON envelope {"id","name","data"[,"metadata"]}. */
#ifndef RELAY_ENVELOPE_H
#define RELAY_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Build the envelope for one event into a malloc'd, NUL-terminated line: id and name
 * (the published name: the sink's prefix joined to the event's name) are JSON-escaped;
 * payload and headers must already be compact JSON (the store reads them so), and are
 * copied as they are. headers NULL: no "metadata" key. Sets *len. Returns NULL only if
 * memory runs out.
 */
char *envelope_build(const char *id, const char *name, const char *payload,
    const char *headers, size_t *len);

/* The same into out, which has room for envelope_max bytes (the worst case of escaping,
 * and the NUL); returns the length. payload_len and headers_len are their strlen. */
size_t envelope_max(const char *id, const char *name, size_t payload_len, size_t headers_len);
size_t envelope_write(char *out, const char *id, const char *name, const char *payload,
    size_t payload_len, const char *headers, size_t headers_len);

/* A header skipped from a CloudEvent (not a valid extension name, or not a scalar). */
typedef void envelope_skip_fn(const char *name, void *arg);

/*
 * Build a CloudEvents 1.0 structured JSON event, one line, malloc'd: specversion "1.0",
 * id, source, type (the published name), time (created_at, RFC 3339 UTC with
 * milliseconds), datacontenttype "application/json", then each header whose name is a
 * valid extension name (a-z, 0-9, at most 20 characters, not an attribute's name) and
 * whose value is a string, number or boolean, and data (the payload). Other headers are
 * left out and passed to skip (may be NULL). Sets *len. NULL only if memory runs out.
 */
char *envelope_cloudevent(const char *id, const char *type, const char *source,
    int64_t created_at, const char *payload, const char *headers, envelope_skip_fn *skip,
    void *arg, size_t *len);

/* created_at (unix ms) as RFC 3339 UTC with milliseconds, into buf (at least 32 bytes). */
void envelope_time(int64_t ms, char *buf, size_t len);

#endif
