/*
 * redis_url.h: Redis connection URLs.
 *
 *   redis://[[user][:password]@]host[:port][/db][?db=N&username=U&password=P]
 *   unix://[[user][:password]@]/path/to.sock[?db=N&username=U&password=P]
 *   redis+unix:// is a synonym of unix://
 *
 * host may be an IPv6 literal in brackets ("[::1]"). user and password are
 * percent-decoded; everything up to the last '@' is the user information, so a password
 * may hold any character. rediss:// (TLS) is refused: hiredis 0.14 has no TLS.
 *
 * Ownership: the strings in struct redis_url belong to it until redis_url_free; the
 * strings the functions below return are malloc'd and the caller frees them. No message
 * or returned string ever contains the password.
 */
#ifndef RELAY_REDIS_URL_H
#define RELAY_REDIS_URL_H

#define REDIS_URL_DEFAULT_HOST "127.0.0.1"
#define REDIS_URL_DEFAULT_PORT 6379

struct redis_url {
	char *host;      /* TCP host (IPv6 without brackets), or NULL for a unix socket */
	int port;        /* TCP port, 0 for a unix socket */
	char *path;      /* unix socket path, or NULL */
	char *username;  /* NULL: none (AUTH with the password only) */
	char *password;  /* NULL: no AUTH */
	int db;
};

/* Parse url into ru. 0, or -1 with *cause (malloc'd, no password in it). */
int redis_url_parse(const char *url, struct redis_url *ru, char **cause);
void redis_url_free(struct redis_url *ru);

/* ru as a URL for logs, the password shown as "***": "redis://127.0.0.1:6379/0". */
char *redis_url_describe(const struct redis_url *ru);

/* The text of url, valid or not, with any password replaced by "***". */
char *redis_url_redact(const char *url);

/* A malloc'd copy of text (a message, printed JSON) with every URL in it, of any scheme,
 * passed through redis_url_redact. A URL ends at a quote, a comma or white space. */
char *redis_url_redact_text(const char *text);

#endif
