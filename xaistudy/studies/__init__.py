"""One module (or package) per experiment: pure functions of validated parameters that return
frozen results, every stage cached. No claims, no prose, no display tables, no figures."""
