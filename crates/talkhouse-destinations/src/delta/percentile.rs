//! An exact `percentile_cont` for the Delta destination's DataFusion sessions.
//!
//! DataFusion's built-in `percentile_cont` truncates the interpolation weight to six decimals
//! (`weight = floor(fraction × 10⁶) / 10⁶`), so `percentile_cont(0.9)` of eight values, whose
//! weight is 0.3 but computes as 0.29999…, comes out as `lo + 0.299999 × (hi − lo)`: off by a
//! millionth of the gap, 180 µs on a 180 s gap. PostgreSQL and DuckDB interpolate exactly, and
//! `talkhouse report` must say the same on every destination, so each query session replaces
//! the built-in (and its alias `quantile_cont`) with this one: PostgreSQL's definition,
//! `lo + (hi − lo) × (p(n − 1) − ⌊p(n − 1)⌋)` over the non-NULL values.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use deltalake::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use deltalake::datafusion::common::utils::SingleRowListArrayBuilder;
use deltalake::datafusion::common::{Result, ScalarValue, plan_err};
use deltalake::datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use deltalake::datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use deltalake::datafusion::physical_expr::expressions::Literal;

/// The exact `percentile_cont(p) WITHIN GROUP (ORDER BY x)` (also `quantile_cont`), as a
/// DataFusion aggregate to register over the built-in.
pub(super) fn percentile_cont() -> AggregateUDF {
    AggregateUDF::from(ExactPercentileCont::new())
}

/// The aggregate's definition: one float input, one literal fraction in `[0, 1]`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactPercentileCont {
    signature: Signature,
    aliases: Vec<String>,
}

impl ExactPercentileCont {
    fn new() -> Self {
        Self {
            signature: Signature::uniform(2, vec![DataType::Float64], Volatility::Immutable),
            aliases: vec!["quantile_cont".to_owned()],
        }
    }
}

impl AggregateUDFImpl for ExactPercentileCont {
    fn name(&self) -> &str {
        "percentile_cont"
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(DataType::Float64, true);
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if args.is_distinct {
            return plan_err!("percentile_cont(DISTINCT …) is not supported");
        }
        let literal = args
            .exprs
            .get(1)
            .and_then(|e| e.downcast_ref::<Literal>())
            .map(Literal::value);
        let p = match literal {
            Some(ScalarValue::Float64(Some(p))) => *p,
            Some(ScalarValue::Float32(Some(p))) => f64::from(*p),
            _ => return plan_err!("percentile_cont takes a literal fraction, such as 0.9"),
        };
        if !(0.0..=1.0).contains(&p) {
            return plan_err!("percentile_cont takes a fraction between 0 and 1, not {p}");
        }
        let descending = args.order_bys.first().is_some_and(|s| s.options.descending);
        Ok(Box::new(Values {
            p: if descending { 1.0 - p } else { p },
            values: Vec::new(),
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

/// Every non-NULL input value, sorted at the end.
#[derive(Debug)]
struct Values {
    p: f64,
    values: Vec<f64>,
}

impl Values {
    fn extend(&mut self, array: &dyn Array) -> Result<()> {
        let Some(floats) = array.as_primitive_opt::<Float64Type>() else {
            return plan_err!(
                "percentile_cont expects DOUBLE input, got {}",
                array.data_type()
            );
        };
        self.values.extend(floats.iter().flatten());
        Ok(())
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(a) => self.extend(a.as_ref()),
            None => Ok(()),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first().and_then(|s| s.as_list_opt::<i32>()) else {
            return plan_err!("percentile_cont: unexpected partial state");
        };
        for list in lists.iter().flatten() {
            self.extend(list.as_ref())?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = Float64Array::from(std::mem::take(&mut self.values));
        Ok(vec![
            SingleRowListArrayBuilder::new(Arc::new(values)).build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(interpolate(&mut self.values, self.p)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }
}

/// PostgreSQL's `percentile_cont`: the value at position `p(n − 1)` of the sorted values,
/// interpolated linearly between its neighbours; `None` for no values.
fn interpolate(values: &mut [f64], p: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    values.sort_unstable_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let position = p * last as f64;
    let below = position.floor();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = (below as usize).min(last);
    let lo = values[i];
    let hi = values[(i + 1).min(last)];
    Some(lo + (hi - lo) * (position - below))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::float_cmp)]

    use super::*;
    use deltalake::arrow::array::RecordBatch;
    use deltalake::arrow::datatypes::Schema;
    use deltalake::datafusion::prelude::SessionContext;

    #[test]
    fn interpolates_like_postgres() {
        // PostgreSQL: percentile_cont(0.9) of 1, 2, 3, 4 = 3.7; of one value, that value.
        assert_eq!(interpolate(&mut [4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert!((interpolate(&mut [4.0, 1.0, 3.0, 2.0], 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(interpolate(&mut [7.0], 0.9), Some(7.0));
        assert_eq!(interpolate(&mut [1.0, 9.0], 1.0), Some(9.0));
        assert_eq!(interpolate(&mut [1.0, 9.0], 0.0), Some(1.0));
        assert_eq!(interpolate(&mut [], 0.5), None);
    }

    /// Seven zeros and 180 (and a NULL): p90 sits at position 0.9 × 7 = 6.3, between the last
    /// zero and 180, so the answer is 0.3 × 180 = 54 exactly; the built-in says 53.99982.
    #[tokio::test]
    async fn replaces_the_built_in_in_sql() {
        let ctx = SessionContext::new();
        let values = Float64Array::from(vec![
            Some(0.0),
            Some(0.0),
            None,
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(180.0),
        ]);
        let schema = Schema::new(vec![Field::new("x", DataType::Float64, true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(values)]).unwrap();
        ctx.register_batch("t", batch).unwrap();
        let sql = "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY x) AS a, \
                   quantile_cont(x, 0.9) AS b, \
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY x DESC) AS c FROM t";
        let built_in = first_row(&ctx, sql).await;
        assert!((built_in[0] - 54.0).abs() > 1e-6, "{built_in:?}");

        ctx.register_udaf(percentile_cont());
        let exact = first_row(&ctx, sql).await;
        assert!((exact[0] - 54.0).abs() < 1e-9, "{exact:?}");
        assert!((exact[1] - 54.0).abs() < 1e-9, "{exact:?}");
        // Descending (180, 0, …): position 6.3 lies between two zeros, as in PostgreSQL.
        assert_eq!(exact[2], 0.0, "{exact:?}");

        let none = first_row(
            &ctx,
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS a FROM t WHERE x > 1000",
        )
        .await;
        assert!(none[0].is_nan(), "no rows give NULL: {none:?}");
        let err = ctx
            .sql("SELECT percentile_cont(1.5) WITHIN GROUP (ORDER BY x) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
    }

    /// The first row's columns as floats, NULL as NaN.
    async fn first_row(ctx: &SessionContext, sql: &str) -> Vec<f64> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let batch = &batches[0];
        batch
            .columns()
            .iter()
            .map(|c| {
                let c = c.as_primitive::<Float64Type>();
                if c.is_null(0) { f64::NAN } else { c.value(0) }
            })
            .collect()
    }
}
