"""The WaveSpeed adapter: the production VideoProvider over HTTP (facts in ../shared/wavespeed-api.md)."""
