"""Tests of chaosnet.retry, chaosnet.framing and chaosnet.connection."""
