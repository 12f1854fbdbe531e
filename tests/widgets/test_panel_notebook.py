"""End to end on a single gated server: a notebook whose kernel the server started runs the panel (nbclient).

The user is not enrolled yet and logs in with the password alone (the ``optional`` rollout policy), links a
device from the notebook, and afterwards can log in only with the password and a code of that device. At
every step the notebook is saved with its widget state, and neither the secret nor the otpauth URI is in the
file or its checkpoint.
"""

from __future__ import annotations

import pytest

from helpers.totp import Device
from helpers.widgets import PASSWORD, GateServer, WebUser, manual_key, running_notebook

pytestmark = pytest.mark.slow

OPTIONAL = pytest.param('c.TwoFactorConfig.enrollment_policy = "optional"\n', id="optional")


# What the kernel still holds once the panel is done: every live widget's state, the displayed-values history
# (Out) and the input history (In), and the panel's own attributes.
KERNEL_MEMORY = (
    "repr([w.get_state() for w in __import__('ipywidgets.widgets.widget', fromlist=['_'])._instances.values()])"
    " + repr(Out) + repr(In) + repr(vars(panel))"
)


def assert_no_secret(saved: str, secret: str) -> None:
    for needle in (secret, "otpauth", " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))):
        assert needle not in saved


@pytest.mark.parametrize("gate_server", [OPTIONAL], indirect=True)
def test_link_a_device_from_a_notebook(gate_server: GateServer) -> None:
    user = WebUser(gate_server.url)
    assert user.login().status_code == 302  # the password alone, under the optional policy

    with running_notebook(user, gate_server.runtime_dir, gate_server.root_dir, "panel.ipynb") as notebook:
        notebook.run("from jupyter_2fa.widgets import EnrollmentPanel\npanel = EnrollmentPanel()\npanel")
        assert notebook.value("panel.status['enrolled']") is False
        assert notebook.value("panel.step") == "menu"

        notebook.run("panel.link_button.click()")
        notebook.run(f"panel.password.value = {PASSWORD!r}\npanel.continue_button.click()")
        assert notebook.value("panel.step") == "scan", notebook.value("panel.message.value")
        assert notebook.value("panel.password.value") == ""
        qr_url = notebook.value("panel.qr.value.split('\"')[1]")

        picture = user.picture(qr_url)  # the browser rendering <img src=qr_url>
        assert picture.status_code == 200 and picture.headers["Content-Type"] == "image/svg+xml"
        secret = manual_key(picture.text)
        assert user.picture(qr_url).status_code == 404, "the picture is shown once"
        assert_no_secret(notebook.save(), secret)

        device = Device(secret)
        notebook.run(f"panel.code.value = {device.next_code()!r}\npanel.confirm_button.click()")
        assert notebook.value("panel.step") == "codes", notebook.value("panel.message.value")
        codes = notebook.value("panel.recovery_codes.value")
        assert codes.count("<li>") == 10
        assert notebook.value("panel.qr.value") == ""
        assert not user.logged_in(), "linking a device ends the sessions granted before it, this one too"
        assert user.login(device.next_code()).status_code == 302, "the new device's codes log in"
        assert_no_secret(notebook.save(), secret)

        notebook.run("panel.stored_button.click()")
        assert notebook.value("panel.recovery_codes.value") == ""
        assert notebook.value("panel.status['enrolled']") is True
        assert_no_secret(notebook.save(), secret)
        assert_no_secret(notebook.value(KERNEL_MEMORY), secret)

    assert WebUser(gate_server.url).login().status_code != 302, "the password alone no longer opens the server"
    fresh = WebUser(gate_server.url)
    assert fresh.login(device.next_code()).status_code == 302
    assert fresh.logged_in()
