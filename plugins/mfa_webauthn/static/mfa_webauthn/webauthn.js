/* Security keys and passkeys (WebAuthn) for pfcore.
 *
 * A form marked data-webauthn="register" | "authenticate" | "passkey" posts its
 * fields to data-options-url, hands the options to navigator.credentials,
 * posts the credential (as JSON, in the field "credential") to the form's
 * action and follows the {"redirect": url} the server answers, or shows its
 * {"error": message} in the form's aria-live region.
 */
(function () {
  "use strict";

  var MESSAGES = {
    unsupported: "This browser cannot use security keys or passkeys. Use another browser or another way.",
    cancelled: "Nothing was confirmed: the request was cancelled or timed out. Try again.",
    known: "This security key is already registered. Use another key.",
    offline: "pfcore could not be reached. Check your connection and try again.",
    expired: "This page expired. Reload the page and try again.",
    slow: "Too many attempts. Wait a minute and try again.",
    failed: "Something went wrong. Reload the page and try again."
  };

  // --- base64url <-> ArrayBuffer (for browsers without the JSON helpers) -------

  function toBuffer(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: toBuffer(item.id) });
    });
  }

  function creationOptions(json) {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      user: Object.assign({}, json.user, { id: toBuffer(json.user.id) }),
      excludeCredentials: withIds(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: toBuffer(json.challenge),
      allowCredentials: withIds(json.allowCredentials)
    });
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = toText(response.userHandle) || undefined;
    }
    return json;
  }

  // --- talking to pfcore -----------------------------------------------------------

  function csrfToken(form) {
    var field = form.querySelector('input[name="csrf_token"]');
    if (field && field.value) { return field.value; }
    var headers = document.body.getAttribute("hx-headers:inherited") || document.body.getAttribute("hx-headers");
    if (headers) {
      try { return JSON.parse(headers)["X-CSRFToken"] || ""; } catch (error) { /* fall through */ }
    }
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function post(form, url, fields) {
    return window.fetch(url, {
      method: "POST",
      body: fields,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken(form) }
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (type.indexOf("application/json") === 0) {
        return response.json();
      }
      if (response.status === 429) { return { error: MESSAGES.slow }; }
      if (response.status === 400) { return { error: MESSAGES.expired }; }
      return { error: MESSAGES.failed };
    }, function () {
      return { error: MESSAGES.offline };
    });
  }

  function show(form, text, kind) {
    var region = form.querySelector("[data-webauthn-message]");
    if (!region) { return; }
    region.textContent = "";
    if (text) {
      var message = document.createElement("p");
      message.className = "alert " + (kind || "error");
      message.textContent = text;
      region.appendChild(message);
    }
  }

  function setBusy(form, busy) {
    form.querySelectorAll("button").forEach(function (button) { button.disabled = busy; });
    form.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function fieldsOf(form, submitter) {
    var fields = new URLSearchParams(new FormData(form));
    if (submitter && submitter.name) { fields.set(submitter.name, submitter.value); }
    return fields;
  }

  function browserError(error, mode) {
    var name = error && error.name;
    if (name === "InvalidStateError" && mode === "register") { return MESSAGES.known; }
    if (name === "NotAllowedError" || name === "AbortError") { return MESSAGES.cancelled; }
    if (name === "NotSupportedError") { return MESSAGES.unsupported; }
    return MESSAGES.failed;
  }

  // An answer with a redirect is followed; one with an error is shown. True: handled.
  function handled(form, answer) {
    if (answer && answer.redirect) {
      window.location.assign(answer.redirect);
      return true;
    }
    if (!answer || answer.error || !answer.options) {
      show(form, (answer && answer.error) || MESSAGES.failed, "error");
      return true;
    }
    return false;
  }

  function run(form, submitter) {
    var mode = form.getAttribute("data-webauthn");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      show(form, MESSAGES.unsupported, "error");
      return Promise.resolve();
    }
    var fields = fieldsOf(form, submitter);
    setBusy(form, true);
    show(form, mode === "register" ? "Follow your browser's prompts to add the key\u2026"
                                   : "Follow your browser's prompts to use your key\u2026", "info");
    return post(form, form.getAttribute("data-options-url"), fields).then(function (answer) {
      if (handled(form, answer)) { return null; }
      var ceremony = mode === "register"
        ? navigator.credentials.create({ publicKey: creationOptions(answer.options) })
        : navigator.credentials.get({ publicKey: requestOptions(answer.options) });
      return ceremony.then(function (credential) {
        if (!credential) { show(form, MESSAGES.cancelled, "error"); return null; }
        fields.set("credential", JSON.stringify(credentialJSON(credential)));
        return post(form, form.getAttribute("action"), fields).then(function (result) {
          if (result && result.redirect) {
            window.location.assign(result.redirect);
            return null;
          }
          show(form, (result && result.error) || MESSAGES.failed, "error");
          return null;
        });
      }, function (error) {
        show(form, browserError(error, mode), "error");
        return null;
      });
    }).then(function () {
      setBusy(form, false);
    });
  }

  // The buttons come disabled: clicked before this script ran, a form would post
  // without a credential and the browser would show the server's JSON answer. They
  // work from here on (without JavaScript they stay off, and <noscript> says why).
  document.querySelectorAll("form[data-webauthn] button[type=submit]").forEach(function (button) {
    button.disabled = false;
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-webauthn")) { return; }
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") { return; }
    run(form, event.submitter);
  });
}());
