//! Multi-threaded compressors that still emit one gzip member / bzip2 stream.
