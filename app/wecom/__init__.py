"""The WeCom callback protocol: signatures, crypto, XML, replies. No Flask, no I/O."""

from .aes import MessageCrypto
from .callback import CallbackCrypto, InvalidTokenError
from .compat import WXBizMsgCrypt
from .envelope import build_reply_envelope, parse_envelope
from .errors import (
    ComputeSignatureError,
    DecodeBase64Error,
    DecryptError,
    EncodeBase64Error,
    EncryptError,
    EnvelopeError,
    GenerateXmlError,
    IllegalBufferError,
    InvalidAESKeyError,
    MessageError,
    ReceiveIdError,
    SignatureError,
    WeComError,
)
from .messages import dedup_key, parse_message
from .replies import (
    Article,
    ImageReply,
    NewsReply,
    Reply,
    TextReply,
    UpdateButtonReply,
    VideoReply,
    VoiceReply,
    split_utf8,
    to_reply,
    truncate_utf8,
)
from .signature import compute_signature, verify_signature
from .xmlsafe import parse_xml

__all__ = [
    "Article",
    "CallbackCrypto",
    "ComputeSignatureError",
    "DecodeBase64Error",
    "DecryptError",
    "EncodeBase64Error",
    "EncryptError",
    "EnvelopeError",
    "GenerateXmlError",
    "IllegalBufferError",
    "ImageReply",
    "InvalidAESKeyError",
    "InvalidTokenError",
    "MessageCrypto",
    "MessageError",
    "NewsReply",
    "ReceiveIdError",
    "Reply",
    "SignatureError",
    "TextReply",
    "UpdateButtonReply",
    "VideoReply",
    "VoiceReply",
    "WXBizMsgCrypt",
    "WeComError",
    "build_reply_envelope",
    "compute_signature",
    "dedup_key",
    "parse_envelope",
    "parse_message",
    "parse_xml",
    "split_utf8",
    "to_reply",
    "truncate_utf8",
    "verify_signature",
]
