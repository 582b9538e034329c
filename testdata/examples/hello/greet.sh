#!/bin/sh
echo "$1 from strata"
