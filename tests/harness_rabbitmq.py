"""harness_rabbitmq.py: a private RabbitMQ node for tests and benchmarks.

- RabbitNode: the node (start, stop, stop_app/start_app, rabbitmqctl, a pika channel).
- start_module_node() / stop_module_node(): the one node a test file shares, set up in its
  setUpModule and always stopped in tearDownModule.
- get_messages(): take messages off a queue with a consumer (fast enough for tens of
  thousands), in order.

As root, Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user, which cannot
write under the build tree, so the node is started from /usr/lib/rabbitmq/bin with every
path (HOME and so the Erlang cookie, data, logs) and port its own. It never touches a node
it did not start.
"""

import os
import signal
import subprocess
import time

from harness import TempDir, free_port, wait_for

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

    def channel(self, user="guest", password="guest", vhost="/"):
        """A new pika connection and a channel on it: (conn, ch)."""
        import pika
        conn = pika.BlockingConnection(pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, virtual_host=vhost,
            credentials=pika.PlainCredentials(user, password), connection_attempts=3,
            retry_delay=0.5))
        return conn, conn.channel()


def start_module_node(prefix, conf=None, setup=None):
    """A started node in a TempDir of its own, for a test file's setUpModule: (node, tmp).
    setup(node), if given, runs once it is up (users, vhosts...). On any failure the node is
    stopped before the exception goes on."""
    tmp = TempDir(prefix)
    node = RabbitNode(tmp.join("node"), conf=conf)
    try:
        node.start()
        if setup is not None:
            setup(node)
    except BaseException:
        node.stop()
        raise
    return node, tmp


def stop_module_node(node, tmp):
    """tearDownModule's half of start_module_node (either may be None)."""
    if node is not None:
        node.stop()
    if tmp is not None:
        tmp.cleanup()


def get_messages(ch, queue, n, timeout=20.0, quiet=0.3):
    """[(properties, body)] from queue, in order: at least n (fewer only if timeout passes
    first), then whatever else arrives until none has come for quiet seconds."""
    got = []
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    for method, props, body in ch.consume(queue, auto_ack=True, inactivity_timeout=0.05):
        now = time.monotonic()
        if method is not None:
            got.append((props, body))
            last = now
        elif (len(got) >= n and now - last >= quiet) or now > deadline:
            break
    ch.cancel()
    return got
