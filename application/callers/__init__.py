"""The former call sites of the old backend's video function, one application service each.

Each is a thin call of GenerateVideo that tags the generation with its `source_module`, so the content
library and the usage ledger say which part of the product made a video.
"""
