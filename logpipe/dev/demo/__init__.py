"""The local demo of the whole pipeline (`logpipe dev demo`) and the pod simulator it drives."""
