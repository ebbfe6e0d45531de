"""harness_rabbitmq.py: a private RabbitMQ node for tests and benchmarks.

As root, Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user, which cannot
write under the build tree, so the node is started from /usr/lib/rabbitmq/bin with every
path (HOME and so the Erlang cookie, data, logs) and port its own. It never touches a node
it did not start.
"""

import os
import signal
import subprocess
import time

from harness import free_port, wait_for

RABBIT_BIN = "/usr/lib/rabbitmq/bin"


def rabbit_port():
    """A free port outside 35672-35682, where rabbitmqctl itself listens."""
    while True:
        port = free_port()
        if not 35672 <= port <= 35682:
            return port


class RabbitNode:
    """A RabbitMQ node of our own, in dir; conf, if given, is the text of its
    rabbitmq.conf (e.g. a TLS listener)."""

    def __init__(self, dir, conf=None):
        self.dir = dir
        self.port = rabbit_port()
        self.name = "outbox-test-%d-%d@localhost" % (os.getpid(), self.port)
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(dir, sub), exist_ok=True)
        with open(os.path.join(dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self.env = dict(os.environ, HOME=os.path.join(dir, "home"),
                        RABBITMQ_NODENAME=self.name,
                        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                        RABBITMQ_NODE_PORT=str(self.port),
                        RABBITMQ_DIST_PORT=str(rabbit_port()),
                        RABBITMQ_MNESIA_BASE=os.path.join(dir, "mnesia"),
                        RABBITMQ_LOG_BASE=os.path.join(dir, "log"),
                        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(dir, "enabled_plugins"),
                        RABBITMQ_PID_FILE=os.path.join(dir, "rabbit.pid"))
        if conf is not None:
            self.env["RABBITMQ_CONFIG_FILE"] = os.path.join(dir, "rabbitmq.conf")
            with open(self.env["RABBITMQ_CONFIG_FILE"], "w") as f:
                f.write(conf)

    def ctl(self, *args, timeout=120, check=True):
        p = subprocess.run([os.path.join(RABBIT_BIN, "rabbitmqctl"), "-n", self.name] +
                           list(args), env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("rabbitmqctl %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def start(self):
        subprocess.run([os.path.join(RABBIT_BIN, "rabbitmq-server"), "-detached"],
                       env=self.env, check=True, capture_output=True, timeout=60)
        self.await_startup()

    def await_startup(self, timeout=120):
        # Until the booting node registers with epmd, await_startup fails at once.
        deadline = time.time() + timeout
        while True:
            try:
                self.ctl("await_startup", timeout=timeout)
                return
            except AssertionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def pid(self):
        try:
            with open(self.env["RABBITMQ_PID_FILE"]) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        pid = self.pid()
        self.ctl("stop", check=False, timeout=60)
        if pid is not None:
            try:
                wait_for(lambda: not os.path.exists("/proc/%d" % pid), 20,
                         what="the node to exit")
            except AssertionError:
                os.kill(pid, signal.SIGKILL)

    def stop_app(self):
        self.ctl("stop_app")

    def start_app(self):
        self.ctl("start_app")
        self.await_startup()

    def url(self, user="guest", password="guest", vhost=""):
        return "amqp://%s:%s@127.0.0.1:%d/%s" % (user, password, self.port, vhost)

    def channel(self):
        import pika
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, connection_attempts=3, retry_delay=0.5))
        return conn, conn.channel()
