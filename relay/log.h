/* log.h: leveled, timestamped log lines on stderr (or a file reopened on SIGHUP), as
 * text or as one JSON object a line. */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* LOG_FORMAT_JSON: {"ts":"...","level":"warn","pid":42,"sink":"redis","msg":"..."}; the
 * sink field is taken from a message that starts "sink NAME: ". */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Parse "error", "warn", "info", "debug"; -1 if none. */
int log_level_parse(const char *s);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_format(enum log_format format);

/* Log to path (appending) instead of stderr; NULL for stderr. -1 with errno on failure. */
int log_open(const char *path);
/* Reopen the log file (after rotation); no-op on stderr. */
int log_reopen(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
