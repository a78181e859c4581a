"""The polling helper of the ROS tests: discovery and delivery over DDS take a while on a loaded machine."""
import time

TIMEOUT = 60.0  # s; generous: the machine may be loaded


def wait_for(predicate, what="condition", timeout=TIMEOUT):
    """The first truthy value of `predicate()`, polled every 20 ms; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
