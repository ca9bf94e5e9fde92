"""Tools for a developer's desk and for the tests; they ship with the service.

``simulator`` acts as WeCom against a running service, ``service_url`` finds that service,
``kf_conversation`` plays a 微信客服 customer, and ``fakewecom`` is the fake WeCom API. Nothing
here imports the web layer; ``app/web/cli`` puts ``flask`` commands on top.
"""
