"""Label (paper §3.2.3): the user's decisions per scenario, verdicts by majority (ρ), the automatic reviewer."""
