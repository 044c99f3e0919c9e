"""Tools for people working on the project, never imported by a service and not in the image.

localkafka  Apache Kafka from Maven Central, run without Docker (``make run``, the tests, ``make bench``)
devstack    ``make run``: the broker and every service under honcho
devsmtp     the SMTP catcher of ``make run`` (mail kept as .eml files)
dlq         list and replay dead letters from a shell
peek        the newest records of the pipeline's topics from a shell
"""
