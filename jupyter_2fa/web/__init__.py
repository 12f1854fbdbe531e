"""The 2FA pages and API, written once for both hosts (tornado, but no jupyter_server or jupyterhub import).

- :mod:`.host`: ``Host``, the run-time base of ``TOTPIdentityProvider`` and ``TOTPAuthenticator``: the core,
  client addresses, the one login decision, password-as-credentials;
- :mod:`.handler`: ``FlowHandler``, the handful of facts a flow asks its host's handlers (``server/handlers.py``,
  ``hub/handlers.py`` answer them);
- :mod:`.linking`: the steps of linking a device (start, confirm, cancel, new recovery codes);
- :mod:`.pages`: the enrollment page; :mod:`.api`: the JSON API and the one-time QR picture;
- :mod:`.forms`: strict input; :mod:`.models`: JSON answers; :mod:`.refusals`: refusals as HTTP answers.
"""
