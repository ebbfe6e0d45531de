#!/bin/sh
# consumer.sh: a consumer in shell. Subscribes to the push-events channel and handles each
# envelope {"id","name","data"}, skipping ids it has already seen (delivery is
# at-least-once, so a consumer de-duplicates by id). Needs redis-cli and jq.
#   examples/consumer.sh [CHANNEL] [redis-cli options...]
channel=${1:-liquid}
[ $# -gt 0 ] && shift
seen=$(mktemp)
trap 'rm -f "$seen"' EXIT
# --raw prints the message kind, the channel and the payload on lines of their own: keep the payloads.
redis-cli "$@" --raw SUBSCRIBE "$channel" | while IFS= read -r line; do
	case $line in "{"*) ;; *) continue ;; esac
	id=$(printf '%s' "$line" | jq -r .id)
	if grep -qxF "$id" "$seen"; then
		continue
	fi
	printf '%s\n' "$id" >> "$seen"
	name=$(printf '%s' "$line" | jq -r .name)
	case $name in
	user.login)  printf 'user %s logged in\n' "$(printf '%s' "$line" | jq -r .data.user._id)" ;;
	user.follow) printf '%s\n' "$line" | jq -r '"\(.data.source) followed \(.data.target)"' ;;
	*)           printf 'event %s (%s)\n' "$name" "$id" ;;
	esac
done
