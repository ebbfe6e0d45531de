/*
 * options-man.c: print the options section of outbox(5) from the option tables, so the
 * manual cannot drift from the code. tests/test_docs.py compares it with man/outbox.5;
 * `make man-options` writes it there.
 */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "option.h"
#include "sink.h"

/* s for roff: '-' as "\-", '\' as "\e", and a leading '.' or '\'' made harmless. */
static void
options_man_text(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s != '\0'; s++) {
		if (*s == '-')
			fputs("\\-", f);
		else if (*s == '\\')
			fputs("\\e", f);
		else
			fputc(*s, f);
	}
}

/* What values the row takes, in words. */
static void
options_man_values(FILE *f, const struct conf_option *o)
{
	const char *const *c;

	switch (o->type) {
	case OPTION_STRING:
		fputs("a string", f);
		break;
	case OPTION_INT:
	case OPTION_INT64:
		fprintf(f, "an integer, %" PRId64 " to %" PRId64, o->min, o->max);
		break;
	case OPTION_NUMBER:
		fprintf(f, "a number, %" PRId64 " to %" PRId64, o->min, o->max);
		break;
	case OPTION_BOOL:
		fputs("true or false", f);
		break;
	case OPTION_DURATION:
		fputs("a duration, or a number of seconds", f);
		break;
	case OPTION_CHOICE:
		for (c = o->choices; *c != NULL; c++)
			fprintf(f, "%s%s", c == o->choices ? "" : c[1] == NULL ? " or " : ", ", *c);
		break;
	case OPTION_STRINGS:
		fputs("a string or an array of strings", f);
		break;
	case OPTION_PATTERNS:
		fputs("an array of names or globs", f);
		break;
	case OPTION_OBJECT:
		fputs(o->flags & OPTION_STRING_VALUES ? "an object of strings" : "a JSON object",
		    f);
		break;
	case OPTION_OTHER:
		break;
	}
}

static void
options_man_table(FILE *f, const char *title, const struct conf_option *table)
{
	const struct conf_option *o;

	fprintf(f, ".SS %s\n", title);
	for (o = table; o->name != NULL; o++) {
		fputs(".TP\n.B ", f);
		options_man_text(f, o->name);
		if (o->alias != NULL) {
			fputs("\n.RB \"(or \" ", f);
			options_man_text(f, o->alias);
			fputs(" )", f);
		}
		/* The help line, as a sentence. */
		fprintf(f, "\n%c", toupper((unsigned char)o->help[0]));
		options_man_text(f, o->help + 1);
		if (o->type != OPTION_OTHER) {
			fputs(" (", f);
			options_man_values(f, o);
			if (o->def != NULL && *o->def != '\0') {
				fputs("; default ", f);
				options_man_text(f, o->def);
			}
			if (o->flags & OPTION_SECRET)
				fputs("; secret: never shown", f);
			fputc(')', f);
		}
		fputs(".\n", f);
	}
}

int
main(void)
{
	options_man_table(stdout, "Top\\-level keys", conf_options);
	options_man_table(stdout, "Keys of every sink", conf_sink_options);
	options_man_table(stdout, "Redis options (type redis)", sink_redis_type.options);
	options_man_table(stdout, "RabbitMQ options (type rabbitmq)",
	    sink_rabbitmq_type.options);
	options_man_table(stdout, "NATS options (type nats)", sink_nats_type.options);
	options_man_table(stdout, "MQTT options (type mqtt)", sink_mqtt_type.options);
	options_man_table(stdout, "HTTP options (type http)", sink_http_type.options);
	return ferror(stdout) ? 1 : 0;
}
