"""Running feedring on one machine: the local cluster supervisor behind `make cluster`, `make node`
and `make stop`, which the integration tests and `make bench` use too. Not part of the client
library: an application talking to a cluster never needs it."""
