"""The lm-eval bridge, both ways: lm-eval tasks through our runner (:mod:`harness.lmeval.task`, task plugin
``lmeval``) and our adapters as an lm-eval model (:mod:`harness.lmeval.model`, ``--model unimoe_harness``).
Both build requests with :func:`harness.lmeval.requests.generation_request`, so one lm-eval document gives the
same request, hence the same cached answer, whichever side runs it."""
