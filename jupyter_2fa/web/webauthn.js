// jupyter-2fa: passkeys and security keys (WebAuthn) on the login page and the 2FA page, on both hosts.
// Progressive: without this script (or without the browser's WebAuthn API) the code form works as before.
// The ceremony's challenge stays in an HttpOnly cookie and the server's store; nothing secret passes here.
"use strict";
(function () {
  const b64url = {
    decode(text) {
      const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
      const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
      return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buffer) {
      const bytes = new Uint8Array(buffer);
      let binary = "";
      bytes.forEach((b) => (binary += String.fromCharCode(b)));
      return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
  };

  // Browsers refuse WebAuthn on an IP address (its relying party must be a host name), though such a page can
  // be a secure context (http://127.0.0.1): say so before the user types anything.
  function supported() {
    const host = location.hostname;
    const ipAddress = /^[0-9.]+$/.test(host) || host.includes(":") || host.startsWith("[");
    return Boolean(window.PublicKeyCredential && navigator.credentials && window.isSecureContext && !ipAddress);
  }

  // The server's options (JSON, binary fields in base64url) as the objects the WebAuthn API takes.
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: b64url.decode(json.challenge),
      allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
    };
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: b64url.decode(json.challenge),
      user: { ...json.user, id: b64url.decode(json.user.id) },
      excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64url.decode(c.id) })),
    };
  }

  // A PublicKeyCredential as JSON (what toJSON() gives where the browser has it).
  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    const response = {};
    for (const name of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"]) {
      if (credential.response[name]) {
        response[name] = b64url.encode(credential.response[name]);
      }
    }
    if (typeof credential.response.getTransports === "function") {
      response.transports = credential.response.getTransports();
    }
    return {
      id: credential.id,
      rawId: b64url.encode(credential.rawId),
      type: credential.type,
      response,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  async function post(url, form, body) {
    const xsrf = form.elements.namedItem("_xsrf");
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf ? xsrf.value : "" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer.message || `The server answered ${response.status}.`);
    }
    return answer;
  }

  function refusedByBrowser(error) {
    if (error && error.name === "NotAllowedError") {
      return "The key was not used (cancelled, timed out, or not registered here).";
    }
    if (error && error.name === "InvalidStateError") {
      return "This key is registered already.";
    }
    return (error && error.message) || String(error);
  }

  // A key button of a form: shown where the browser can use a key (else its status line says why); a click runs
  // ``ceremony`` (options from the server, the browser's prompt, the form's submit), saying what went wrong.
  function keyButton(button, ceremony) {
    const form = button.form;
    const status = document.getElementById(button.dataset.status);
    if (!supported()) {
      status.textContent = button.dataset.unsupported;
      return;
    }
    button.hidden = false;
    button.addEventListener("click", async () => {
      const field = (name) => form.elements.namedItem(name);
      const typed = (name) => (field(name) ? field(name).value : "");
      try {
        await ceremony(form, field, typed, status);
      } catch (error) {
        status.textContent = refusedByBrowser(error);
      }
    });
  }

  // The login form: password first, then this button instead of a code.
  async function logIn(form, field, typed, status) {
    if (!typed("password")) {
      status.textContent = "Enter your password first.";
      field("password").focus();
      return;
    }
    status.textContent = "Touch or unlock your key when your browser asks.";
    const body = { password: typed("password"), username: typed("username") };
    const answer = await post(form.querySelector("[data-webauthn]").dataset.optionsUrl, form, body);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(answer.options) });
    field("webauthn").value = JSON.stringify(credentialJSON(credential));
    if (field("otp")) {
      field("otp").value = "";
    }
    status.textContent = "Logging in…";
    form.submit();
  }

  // The 2FA page's "add a key" form: password (and a current code), then the browser creates the key.
  async function register(form, field, typed, status) {
    status.textContent = "Touch or unlock your key when your browser asks.";
    const proof = { password: typed("password"), otp: typed("otp"), username: typed("username") };
    const answer = await post(form.querySelector("[data-webauthn]").dataset.optionsUrl, form, proof);
    const credential = await navigator.credentials.create({ publicKey: creationOptions(answer.options) });
    field("credential").value = JSON.stringify(credentialJSON(credential));
    form.submit();
  }

  document.querySelectorAll("button[data-webauthn='login']").forEach((button) => keyButton(button, logIn));
  document.querySelectorAll("button[data-webauthn='register']").forEach((button) => keyButton(button, register));
})();
