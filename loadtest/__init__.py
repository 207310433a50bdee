"""Load tests of a scrypt helper: the Locust scenario, a distributed runner, plots of its results."""
