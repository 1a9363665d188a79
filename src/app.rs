//! Wiring: config → state → resolver → metrics → audit → listeners; shutdown.
