/*
 * filter.h: a sink's event filter, the one definition in C of the test that the views of
 * schema/outbox.sql write in SQL: an event passes if its name or its published name (the
 * sink's prefix joined to the name) matches one of the filter's patterns by SQLite's GLOB
 * (case-sensitive; *, ?, [...] and [^...]). check_filter runs the same events through both.
 *
 * A NULL filter takes every event; an empty array takes none.
 */
#ifndef RELAY_FILTER_H
#define RELAY_FILTER_H

struct filter;

/* Parse json, a JSON array of strings (as stored in outbox_sink.filter), into *out; NULL
 * json gives a NULL filter. 0, or -1 with a malloc'd *cause. The caller frees *out. */
int filter_parse(const char *json, struct filter **out, char **cause);

/* 1 if the event passes: name is the event's name, published the name the sink sends. */
int filter_match(const struct filter *f, const char *name, const char *published);

void filter_free(struct filter *f);

#endif
