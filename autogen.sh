#!/bin/sh -e
mkdir -p m4 build-aux
autoreconf -fi
