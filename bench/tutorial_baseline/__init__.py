"""The naive tutorial pipeline this project replaces, rebuilt as the peer row of ``make bench``.

Not a service and never shipped: a Flask app that hands each order to ``KafkaProducer.send`` without
waiting, and three consumers without a group that copy each message on. No validation, no
transactions, no email sent, no idempotence: what users compare this project's throughput with.
"""
