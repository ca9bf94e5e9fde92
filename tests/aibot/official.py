"""Test vectors from Tencent's official JSON callback samples, and an independent re-implementation
of the official JSON algorithm (written here from the protocol description, not copied), used to
check our implementation from the outside."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct

from Crypto.Cipher import AES

# weworkapi Java/Go JSON samples: the keys of the XML samples, receiveid = the CorpID.
JAVA_TOKEN = "QDG6eK"
JAVA_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
JAVA_CORP_ID = "wx5823bf96d3bd56c7"
JAVA_SIGNATURE = "0623cbc5a8cbee5bcc137c70de99575366fc2af3"
JAVA_TIMESTAMP = "1409659813"
JAVA_NONCE = "1372623149"
JAVA_ENCRYPT = (
    "CZWs4CWRpI4VolQlvn4dlEC1alN2MUEY2VklGehgBVLBrlVF7SyT+SV+Toj43l4ayJ9UMGKphktKKmP7B2j/"
    "P1ey67XB8PBgS7Wr5/8+w/yWriZv3Vmoo/MH3/1HsIWZrPQ3N2mJrelStIfI2Y8kLKXA7EhfZgZX4o+ffdkZDM"
    "76SEl79Ib9mw7TGjZ9Aw/x/A2VjNbV1E8BtEbRxYYcQippYNw7hr8sFfa3nW1xLdxokt8QkRX83vK3DFP2F6T"
    "QFPL2Tu98UwhcUpPvdJBuu1/yiOQIScppV3eOuLWEsko="
)
JAVA_BODY = json.dumps({"tousername": JAVA_CORP_ID, "encrypt": JAVA_ENCRYPT, "agentid": "218"})
# The same sample's comment shows another ciphertext next to the XML sample's signature: the
# pair does not verify (the ciphertext decrypts, but was signed for nothing shown).
COMMENT_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
COMMENT_ENCRYPT = (
    "CZWs4CWRpI4VolQlvn4dlPBlXke6+HgmuI7p0LueFp1fKH40TNL+YHWJZwqIiYV+3kTrhdNU7fZwc+PmtgBvxSczkFe"
    "Rz+oaVSsomrrtP2Z91LE313djjbWujqInRT+7ChGbCeo7ZzszByf8xnDSunPBxRX1MfX3kAxpKq7dqduW1kpMAx8O8x"
    "UzZ9oC0TLuZchbpxaml4epzGfF21O+zyXDwTxbCEiO0E87mChtzuh/VPlznXYbfqVrnyLNZ5pr"
)

# weworkapi_python callback_json/Sample.py: the token and key are blanked ("xxxxxxx"); they are
# the ones of the Python 3 XML sample, and the receiveid is that sample's CorpID, not the
# envelope's tousername. Its plaintext is not even valid JSON ('"FromUserName": :mycreate"').
PY_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
PY_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
PY_RECEIVE_ID = "ww1436e0e65a779aee"
PY_VERIFY = {
    "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
    "timestamp": "1476416373",
    "nonce": "47744683",
    "echostr": (
        "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
    ),
}
PY_VERIFY_ECHO = "1288432023552776189"
PY_SIGNATURE = "e3647471e395139e2308c1fa963f2d648a00b90e"
PY_TIMESTAMP = "1409659813"
PY_NONCE = "1372623149"
PY_ENCRYPT = (
    "cjhLUX7UU4yCSelv1vz7T0zT8huF51bAMVWriNvO1FMegHrQZNrtvRxbwf0fUPsFvwqR0U0fgiJNEA5Y30F2MoI2S7vv"
    "3EjVQ68C0cjw9frBoUE2Hj0BvFp9h3u6Vbsg4lc1C8AtHdaN8orKuNKkLRLuYEL52R1J3v8olJGZRLnRdVKIivixmX/"
    "eQpzgeExtp20jI1HxRP1AAZ6xZoILdqDPO549LO4WeG+685JRUTdiwcY5fjZlqeMxuT4PpMn1X9OWsS7NRj06Wa5E3"
    "Tvg4twjWp39KPfOdRte6P1T4JU="
)


class OfficialJsonAlgorithm:
    """The official JSON callback algorithm, written independently for the tests:
    sha1 over the sorted four strings; AES-256-CBC with IV = key[:16]; plaintext = 16 random
    bytes + network-order length + message + receiveid, PKCS#7-padded to 32 bytes; the reply is
    ``{"encrypt", "msgsignature", "timestamp" (a string), "nonce"}``."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.key = base64.b64decode(encoding_aes_key + "=")
        self.receive_id = receive_id

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return hashlib.sha1(
            "".join(sorted([self.token, timestamp, nonce, encrypted])).encode()
        ).hexdigest()

    def encrypt(self, text: str) -> str:
        body = text.encode()
        plain = (
            os.urandom(16)
            + struct.pack("I", socket.htonl(len(body)))
            + body
            + self.receive_id.encode()
        )
        pad = 32 - len(plain) % 32
        plain += bytes([pad]) * pad
        return base64.b64encode(
            AES.new(self.key, AES.MODE_CBC, self.key[:16]).encrypt(plain)
        ).decode()

    def decrypt(self, encrypted: str) -> tuple[str, str]:
        plain = AES.new(self.key, AES.MODE_CBC, self.key[:16]).decrypt(base64.b64decode(encrypted))
        plain = plain[: -plain[-1]]
        length = socket.ntohl(struct.unpack("I", plain[16:20])[0])
        return plain[20 : 20 + length].decode(), plain[20 + length :].decode()

    def encrypt_reply(self, text: str, nonce: str, timestamp: str) -> str:
        encrypted = self.encrypt(text)
        return json.dumps(
            {
                "encrypt": encrypted,
                "msgsignature": self.sign(timestamp, nonce, encrypted),
                "timestamp": timestamp,
                "nonce": nonce,
            }
        )

    def decrypt_post(self, body: str, signature: str, timestamp: str, nonce: str) -> str:
        encrypted = json.loads(body)["encrypt"]
        if self.sign(timestamp, nonce, encrypted) != signature:
            raise ValueError("signature")
        text, receive_id = self.decrypt(encrypted)
        if receive_id != self.receive_id:
            raise ValueError("receiveid")
        return text
