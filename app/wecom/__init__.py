"""The WeCom callback protocol: signatures, crypto, XML, replies. No Flask, no I/O."""
