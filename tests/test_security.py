#!/usr/bin/env python3
"""test_security.py: secrets stay secret, and outboxd works with least-privilege brokers.

- A password in a --redis / --amqp URL is overwritten in the relay's argv (ps shows ***)
  and a warning recommends the environment or a private config file; passwords never
  appear in the log, also when the broker refuses them.
- OUTBOXD_REDIS_PASSWORD / OUTBOXD_AMQP_PASSWORD give the password instead.
- A config file that holds a password and that other users can read earns a warning
  naming it (group-readable does not: that is how a service's group reads its config).
- A Redis ACL user with only the rights outbox(5) documents can publish and XADD.
- A RabbitMQ user limited to one vhost works there and is refused on another, clearly.
- TLS to RabbitMQ with peer verification, against a CA made here with openssl: the right
  CA connects, a wrong one fails with a clear error.

Private redis-servers (one per test) and one private RabbitMQ node with a TLS listener.
Skipped when a server, openssl or pika is missing (a failure when
OUTBOX_TEST_REQUIRE_SERVERS=1).
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tap  # noqa: E402
from harness import (EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, OUTBOXD,  # noqa: E402
                     BrokerCase, OutboxDB, RedisServer, Subscriber, TempDir, make_ca,
                     make_server_cert)
from harness_rabbitmq import (RABBIT_BIN, get_messages, rabbit_port,  # noqa: E402
                              start_module_node, stop_module_node)

tap.require_programs("redis-server", "openssl", "ps",
                     os.path.join(RABBIT_BIN, "rabbitmq-server"), OUTBOXD)
try:
    import pika  # noqa: E402
except ImportError:
    tap.skip_all("python3-pika is not installed")

PASSWORD = "Sup3r-s3cret-pw"
WRONG = "Wr0ng-pa55word"


def ps_args(pid):
    """The command line of pid as ps shows it to every user."""
    return subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True,
                          text=True, check=True).stdout


class SecurityCase(BrokerCase):
    def setUp(self):
        self.tmp = TempDir("security")
        self.addCleanup(self.tmp.cleanup)
        self.db = OutboxDB(self.tmp.join("app.db"))

    def assert_no_secret(self, text, *secrets):
        for s in secrets:
            self.assertNotIn(s, text, "a password leaked:\n%s" % text)


# ---- Redis --------------------------------------------------------------------------------

class RedisSecurity(SecurityCase):

    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp, password=PASSWORD)
        self.redis.start()
        self.addCleanup(self.redis.stop)

    def sub(self, channel="liquid"):
        s = Subscriber(self.redis, [channel])
        self.addCleanup(s.close)
        return s

    def test_url_password_hidden_from_ps_and_log(self):
        sub = self.sub()
        url = "redis://:%s@127.0.0.1:%d" % (PASSWORD, self.redis.port)
        r = self.relay_env(None, ["--db", self.db.path, "--redis", url]).start()
        r.wait_log("relaying")
        args = ps_args(r.pid)
        self.assert_no_secret(args, PASSWORD)
        self.assertIn("--redis redis://:***@127.0.0.1:%d" % self.redis.port, args)
        self.db.insert("user.login", {"n": 1})
        self.assertEqual(json.loads(sub.wait(1)[0]["data"])["name"], "user.login")
        log = r.wait_log("holds a password")
        self.assertIn("warn: the --redis URL on the command line holds a password: it is "
                      "hidden from ps now", log)
        self.assertIn("OUTBOXD_REDIS_PASSWORD", log)
        self.assert_no_secret(log, PASSWORD)

    def test_env_password(self):
        sub = self.sub()
        url = "redis://127.0.0.1:%d" % self.redis.port
        r = self.relay_env(None, ["--db", self.db.path, "--redis", url],
                           OUTBOXD_REDIS_PASSWORD=PASSWORD).start()
        r.wait_log("relaying")
        self.db.insert("user.login", {"n": 1})
        sub.wait(1)
        self.assert_no_secret(ps_args(r.pid), PASSWORD)
        self.assertNotIn("holds a password", r.log())
        self.assert_no_secret(r.log(), PASSWORD)

    def test_url_password_wins_over_env(self):
        self.db.insert("user.login", {"n": 1})
        url = "redis://:%s@127.0.0.1:%d" % (PASSWORD, self.redis.port)
        r = self.relay_env(None, ["--db", self.db.path, "--redis", url],
                           OUTBOXD_REDIS_PASSWORD=WRONG)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assert_no_secret(log, PASSWORD, WRONG)

    def test_refused_password_not_logged(self):
        self.db.insert("user.login", {"n": 1})
        url = "redis://:%s@127.0.0.1:%d" % (WRONG, self.redis.port)
        rc, log = self.relay_env(None, ["--db", self.db.path, "--redis", url]).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("authentication failed", log)
        self.assert_no_secret(log, WRONG, PASSWORD)
        url = "redis://default@127.0.0.1:%d" % self.redis.port
        rc, log = self.relay_env(None, ["--db", self.db.path, "--redis", url],
                                 OUTBOXD_REDIS_PASSWORD=WRONG).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("authentication failed", log)
        self.assert_no_secret(log, WRONG, PASSWORD)

    def file_config(self, mode):
        r = self.relay_env({"outbox.database": self.db.path, "system.queue-adapter": "redis",
                            "redis.port": self.redis.port, "redis.password": PASSWORD})
        os.chmod(r.config_path, mode)
        return r

    def test_world_readable_config_with_password_warns(self):
        self.db.insert("user.login", {"n": 1})
        r = self.file_config(0o644)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assertIn("warn: %s holds a password and other users can read it (mode 0644): "
                      "chmod o-r %s\n" % (r.config_path, r.config_path), log)
        self.assert_no_secret(log, PASSWORD)

    def test_private_or_group_config_does_not_warn(self):
        self.db.insert("user.login", {"n": 1})
        for mode in (0o600, 0o640):
            rc, log = self.file_config(mode).once()
            self.assertEqual(rc, EXIT_OK, log)
            self.assertNotIn("other users can read it", log)

    def test_world_readable_config_without_password_is_quiet(self):
        cf = {"outbox.database": self.db.path, "system.queue-adapter": "stdout"}
        r = self.relay_env(cf)
        os.chmod(r.config_path, 0o644)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assertNotIn("other users can read it", log)

    def test_world_readable_config_with_url_password_warns(self):
        cf = {"outbox.database": self.db.path, "sinks": {"s": {
            "type": "redis", "url": "redis://:%s@127.0.0.1:%d" % (PASSWORD,
                                                                  self.redis.port)}}}
        r = self.relay_env(cf)
        os.chmod(r.config_path, 0o604)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assertIn("holds a password and other users can read it (mode 0604)", log)
        self.assert_no_secret(log, PASSWORD)


    def test_malformed_config_does_not_quote_a_password(self):
        r = self.relay_env(None)
        path = self.tmp.join("bad.json")
        with open(path, "w") as f:
            f.write('{\n "outbox.database": "%s",\n "redis.password": "%s" "x"\n}\n'
                    % (self.db.path, PASSWORD))
        os.chmod(path, 0o600)
        r.argv += ["-c", path]
        rc, log = r.once()
        self.assertEqual(rc, EXIT_CONFIG, log)
        self.assertIn("%s:3:" % path, log)
        self.assertIn("invalid JSON (not quoted: the line may hold a password)", log)
        self.assert_no_secret(log, PASSWORD)


class RedisAcl(SecurityCase):
    """The rights outbox(5) documents for a publish-only ACL user are enough."""

    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp)
        self.redis.start()
        self.addCleanup(self.redis.stop)
        # The documented minimum: PUBLISH to the sink's channels, XADD to its stream keys,
        # PING (checked on connect), SELECT only for a database other than 0.
        self.redis.call("ACL", "SETUSER", "outboxd", "on", ">" + PASSWORD, "resetchannels",
                        "-@all", "+publish", "+xadd", "+ping", "+select",
                        "&app.*", "~app.*")
        self.redis.call("ACL", "SETUSER", "nopublish", "on", ">" + PASSWORD,
                        "resetchannels", "-@all", "+ping", "&*")
        self.redis.call("ACL", "SETUSER", "noping", "on", ">" + PASSWORD,
                        "resetchannels", "-@all", "+publish", "&*")

    def test_publish_only_user(self):
        sub = Subscriber(self.redis, [], ["app.*"])
        self.addCleanup(sub.close)
        self.db.insert_many([("user.login", {"n": 1}), ("order.paid", {"n": 2})])
        cf = {"outbox.database": self.db.path, "sinks": {
            "pub": {"type": "redis", "url": "redis://outboxd@127.0.0.1:%d/3"
                    % self.redis.port, "password": PASSWORD, "channel": "app.{name}"},
            "stream": {"type": "redis", "url": "redis://outboxd@127.0.0.1:%d"
                       % self.redis.port, "password": PASSWORD, "mode": "stream",
                       "channel": "app.audit"}}}
        rc, log = self.relay_env(cf).once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assertEqual([m["channel"] for m in sub.wait(2)],
                         ["app.user.login", "app.order.paid"])
        self.assertEqual(self.redis.call("XLEN", "app.audit"), 2)
        self.assertEqual(self.db.retry_rows(), [])
        self.assert_no_secret(log, PASSWORD)

    def test_user_without_ping_cannot_connect(self):
        """PING is what tells a refused connection from refused messages: it is needed."""
        self.db.insert("user.login", {"n": 1})
        url = "redis://noping@127.0.0.1:%d" % self.redis.port
        rc, log = self.relay_env(None, ["--db", self.db.path, "--redis", url],
                                 OUTBOXD_REDIS_PASSWORD=PASSWORD).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("redis://noping:***@127.0.0.1:%d/0: the server refuses commands: "
                      "NOPERM" % self.redis.port, log)
        self.assert_no_secret(log, PASSWORD)

    def test_user_without_publish_is_refused_clearly(self):
        self.db.insert("user.login", {"n": 1})
        cf = self.make_config({"outbox.database": self.db.path, "relay.max-attempts": 1,
                               "sinks": {"r": {"type": "redis", "password": PASSWORD,
                                               "url": "redis://nopublish@127.0.0.1:%d"
                                               % self.redis.port}}})
        rc, log = self.relay_env(cf).once()
        self.assertEqual(rc, EXIT_OK, log)
        rows = self.db.failed_rows("r")
        self.assertEqual(len(rows), 1, rows)
        self.assertIn("NOPERM", rows[0]["last_error"])
        self.assert_no_secret(log + rows[0]["last_error"], PASSWORD)


# ---- RabbitMQ -------------------------------------------------------------------------------

NODE = None
NODE_TMP = None
PKI_TMP = None
TLS_PORT = None
CA = None


def setUpModule():
    global NODE, NODE_TMP, PKI_TMP, TLS_PORT, CA
    PKI_TMP = TempDir("security-pki")
    pki = PKI_TMP.path
    CA = {"good": make_ca(pki, "ca"), "wrong": make_ca(pki, "wrong-ca")}
    make_server_cert(pki, "ca")
    TLS_PORT = rabbit_port()
    conf = ("listeners.ssl.default = %d\n"
            "ssl_options.cacertfile = %s\n"
            "ssl_options.certfile = %s\n"
            "ssl_options.keyfile = %s\n"
            "ssl_options.verify = verify_none\n"
            "ssl_options.fail_if_no_peer_cert = false\n"
            % (TLS_PORT, CA["good"], os.path.join(pki, "server.crt"),
               os.path.join(pki, "server.key")))
    NODE, NODE_TMP = start_module_node("security-rabbit", conf, setup_users)


def setup_users(node):
    node.ctl("add_vhost", "vh-a")
    node.ctl("add_vhost", "vh-b")
    node.ctl("add_user", "limited", PASSWORD)
    # What outbox(5) documents: configure its queue, write to the default exchange and
    # the queue, read nothing. guest consumes.
    node.ctl("set_permissions", "-p", "vh-a", "limited", "^sec-",
             "^(amq\\.default|sec-.*)$", "^$")
    node.ctl("set_permissions", "-p", "vh-a", "guest", ".*", ".*", ".*")


def tearDownModule():
    stop_module_node(NODE, NODE_TMP)
    if PKI_TMP is not None:
        PKI_TMP.cleanup()


class RabbitSecurity(SecurityCase):

    def consume(self, queue, n, vhost="/", user="guest", password="guest", timeout=20):
        conn, ch = NODE.channel(user, password, vhost)
        try:
            return [json.loads(body) for _, body in get_messages(ch, queue, n, timeout)]
        finally:
            conn.close()

    def test_vhost_limited_user(self):
        self.db.insert("user.login", {"n": 1})
        url = "amqp://limited@127.0.0.1:%d/vh-a" % NODE.port
        r = self.relay_env(None, ["--db", self.db.path, "--amqp", url, "--queue", "sec-a"],
                           OUTBOXD_AMQP_PASSWORD=PASSWORD)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_OK, log)
        got = self.consume("sec-a", 1, vhost="vh-a")
        self.assertEqual([e["name"] for e in got], ["user.login"])
        self.assert_no_secret(log, PASSWORD)

        url = "amqp://limited@127.0.0.1:%d/vh-b" % NODE.port
        r = self.relay_env(None, ["--db", self.db.path, "--amqp", url, "--queue", "sec-b"],
                           OUTBOXD_AMQP_PASSWORD=PASSWORD)
        rc, log = r.once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("login refused (check the user, password and vhost)", log)
        self.assertIn("access to vhost 'vh-b' refused for user 'limited'", log)
        self.assert_no_secret(log, PASSWORD)

    def test_amqp_url_password_hidden_from_ps(self):
        url = "amqp://limited:%s@127.0.0.1:%d/vh-a" % (PASSWORD, NODE.port)
        r = self.relay_env(None, ["--db", self.db.path, "--amqp", url, "--queue", "sec-ps"])
        r.start()
        r.wait_log("relaying")
        args = ps_args(r.pid)
        self.assert_no_secret(args, PASSWORD)
        self.assertIn("amqp://limited:***@127.0.0.1:%d/vh-a" % NODE.port, args)
        self.db.insert("user.login", {"n": 1})
        got = self.consume("sec-ps", 1, vhost="vh-a")
        self.assertEqual(len(got), 1)
        log = r.wait_log("holds a password")
        self.assertIn("OUTBOXD_AMQP_PASSWORD", log)
        self.assert_no_secret(log, PASSWORD)

    def test_wrong_amqp_password_not_logged(self):
        self.db.insert("user.login", {"n": 1})
        url = "amqp://limited@127.0.0.1:%d/vh-a" % NODE.port
        rc, log = self.relay_env(None, ["--db", self.db.path, "--amqp", url],
                                 OUTBOXD_AMQP_PASSWORD=WRONG).once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("login refused", log)
        self.assert_no_secret(log, WRONG)

    def tls_config(self, ca, queue):
        return {"outbox.database": self.db.path, "sinks": {"tls": {
            "type": "rabbitmq", "url": "amqps://guest@localhost:%d" % TLS_PORT,
            "queue": queue, "tls-ca-file": ca, "connect-timeout-ms": 5000}}}

    def test_tls_verified_with_the_right_ca(self):
        self.db.insert("user.login", {"n": 1})
        rc, log = self.relay_env(self.tls_config(CA["good"], "sec-tls"),
                                 OUTBOXD_AMQP_PASSWORD="guest").once()
        self.assertEqual(rc, EXIT_OK, log)
        self.assertEqual([e["name"] for e in self.consume("sec-tls", 1)], ["user.login"])

    def test_tls_refused_with_a_wrong_ca(self):
        self.db.insert("user.login", {"n": 1})
        rc, log = self.relay_env(self.tls_config(CA["wrong"], "sec-tls-wrong"),
                                 OUTBOXD_AMQP_PASSWORD="guest").once()
        self.assertEqual(rc, EXIT_UNREACHABLE, log)
        self.assertIn("amqps://guest:***@localhost:%d" % TLS_PORT, log)
        self.assertIn("sink tls: cannot connect: amqps://guest:***@localhost:%d/: SSL peer "
                      "cert verification failed (TLS: the server's certificate is not signed "
                      "by a trusted CA: check tls-ca-file)" % TLS_PORT, log)
        self.assertEqual(self.db.cursor("tls"), 0)


if __name__ == "__main__":
    tap.main()
