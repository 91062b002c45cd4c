"""The benchmark sections; each module has `async def run(quick: bool) -> list[Row]`."""
