from typing import Any

from django import forms


class DateInput(forms.DateInput):
    input_type = "date"


class SearchForm(forms.Form):
    """The search page's query string: words plus optional room, speaker and date filters."""

    q = forms.CharField(label="Words", required=False, max_length=500)
    room = forms.CharField(label="Room", required=False, max_length=256)
    speaker = forms.CharField(label="Speaker", required=False, max_length=256)
    since = forms.DateField(label="From", required=False, widget=DateInput)
    until = forms.DateField(label="To", required=False, widget=DateInput)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def has_criteria(self) -> bool:
        return self.is_valid() and any(self.cleaned_data.values())
