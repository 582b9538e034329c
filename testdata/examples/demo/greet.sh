#!/bin/sh
echo "@GREETING@: this image was built by strata in three stages on a busybox base."
