"""Partitions: one dynamic partition per village (村代码), added by the survey sensor as a
village's workbook first arrives (and for every 涉农 village of villages.csv by the inputs sensor)."""

import dagster as dg

VILLAGES = "villages"

village_partitions = dg.DynamicPartitionsDefinition(name=VILLAGES)
